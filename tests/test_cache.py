"""The on-disk feature cache: hits, invalidation, packs, corrupt entries, concurrent writers,
and the torchrun shard logic of extract_manifest."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import write_audio
from emovox.features.cache import FeatureCache, config_key
from emovox.featurize import extract_manifest
from emovox.manifest import Manifest, Utterance


def _manifest(tmp_path, n: int = 4) -> Manifest:
    recs = []
    for i in range(n):
        write_audio(tmp_path / f"a{i}.wav", seconds=0.3 + 0.1 * i, freq=120 + 40 * i, seed=i)
        recs.append(Utterance(id=f"u{i}", audio=f"a{i}.wav"))
    return Manifest(recs, corpus="t", root=str(tmp_path))


def test_put_get_and_miss(tmp_path):
    c = FeatureCache(tmp_path)
    k = c.item_key({"name": "x"}, "d" * 64)
    assert c.get(k) is None and k not in c
    a = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    c.put(k, a)
    assert k in c
    np.testing.assert_array_equal(c.get(k), a)
    assert not list(tmp_path.rglob("*.tmp"))


def test_keys_depend_on_config_audio_and_segment(tmp_path):
    c = FeatureCache(tmp_path)
    base = c.item_key({"name": "lfbe", "n_mels": 40}, "a" * 64, 0.0, 1.0)
    assert base == c.item_key({"n_mels": 40, "name": "lfbe"}, "a" * 64, 0.0, 1.0)  # order-free
    assert base == c.item_key(config_key({"name": "lfbe", "n_mels": 40}), "a" * 64, 0.0, 1.0)
    others = [c.item_key({"name": "lfbe", "n_mels": 64}, "a" * 64, 0.0, 1.0),
              c.item_key({"name": "lfbe", "n_mels": 40}, "b" * 64, 0.0, 1.0),
              c.item_key({"name": "lfbe", "n_mels": 40}, "a" * 64, 0.5, 1.0),
              c.item_key({"name": "lfbe", "n_mels": 40}, "a" * 64, 0.0, None)]
    assert len({base, *others}) == 5


def test_corrupt_entry_is_a_miss(tmp_path):
    c = FeatureCache(tmp_path)
    k = c.item_key({"name": "x"}, "d" * 64)
    c.path(k).parent.mkdir(parents=True)
    c.path(k).write_bytes(b"\x93NUMPY garbage")
    assert c.get(k) is None


def test_pack_roundtrip_fixed_and_variable(tmp_path):
    c = FeatureCache(tmp_path)
    keys = [f"{i:064x}" for i in range(3)]
    var = [np.full((n, 2), n, np.float32) for n in (3, 1, 4)]
    c.save_pack(keys, var)
    back = c.load_pack(keys)
    assert [b.shape for b in back] == [(3, 2), (1, 2), (4, 2)] and back[2][0, 0] == 4
    assert c.load_pack(keys[:2]) is None and c.load_pack(keys[::-1]) is None
    with pytest.raises(ValueError, match="trailing"):
        c.save_pack(keys[:2], [np.zeros((2, 2)), np.zeros((2, 3))])


def test_hit_and_reuse_across_runs(tmp_path):
    m = _manifest(tmp_path)
    first = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert first.stats["computed"] == 4 and not first.stats["from_pack"]
    second = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert second.stats["computed"] == 0 and second.stats["from_pack"]  # warm: one pack read
    for a, b in zip(first.features, second.features):
        np.testing.assert_array_equal(a, b)
    for p in (tmp_path / "c" / "packs").glob("*.npz"):  # packs only speed up; items still serve
        p.unlink()
    third = extract_manifest(m.filter(lambda u: u.id != "u1"), "lfbe", cache_dir=tmp_path / "c",
                             show_progress=False)
    assert third.stats["computed"] == 0 and third.ids == ["u0", "u2", "u3"]


def test_invalidated_by_config_change_and_audio_change(tmp_path):
    m = _manifest(tmp_path, n=2)
    a = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    b = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False, n_mels=24)
    assert b.stats["computed"] == 2 and b.features[0].shape[1] == 24 and a.features[0].shape[1] == 40
    c = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False, center=True)
    assert c.stats["computed"] == 2 and c.features[0].shape[0] != a.features[0].shape[0]
    write_audio(tmp_path / "a1.wav", seconds=0.4, freq=500.0, seed=9)  # new content, same name
    d = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert d.stats["computed"] == 1
    np.testing.assert_array_equal(d.features[0], a.features[0])
    assert not np.allclose(d.features[1][:10], a.features[1][:10])


_WRITER = textwrap.dedent("""
    import sys, numpy as np
    from emovox.features.cache import FeatureCache
    root, key, value = sys.argv[1], sys.argv[2], float(sys.argv[3])
    c = FeatureCache(root)
    a = np.full((400, 1000), value, np.float32)  # 1.6 MB: a write takes a while
    bad = 0
    for _ in range(25):
        c.put(key, a)
        got = c.get(key)
        if got is None or got.shape != a.shape or len(set(np.unique(got))) != 1:
            bad += 1
    print(bad)
""")


def test_two_writer_processes_leave_one_valid_entry(tmp_path):
    c = FeatureCache(tmp_path)
    key = c.item_key({"name": "race"}, "e" * 64)
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), key, str(v)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for v in (1.0, 2.0)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert [o[0].strip() for o in outs] == ["0", "0"]  # no partial or mixed read, ever
    final = c.get(key)
    assert final.shape == (400, 1000) and np.unique(final).tolist() in ([1.0], [2.0])
    assert list(c.path(key).parent.iterdir()) == [c.path(key)]  # no temporary files left


def test_torchrun_ranks_extract_their_own_shard(tmp_path, monkeypatch):
    from emovox import distributed

    m = _manifest(tmp_path, n=5)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "init_process_group", lambda *a, **k: True)
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    monkeypatch.setenv("RANK", "1")
    r1 = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert r1.stats["computed"] == 2 and r1.ids == ["u1", "u3"]  # the others belong to rank 0
    assert {f.id for f in r1.failed} == {"u0", "u2", "u4"}
    monkeypatch.setenv("RANK", "0")
    r0 = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert r0.stats["computed"] == 3 and r0.ids == [f"u{i}" for i in range(5)] and not r0.failed


def test_failure_recorded_for_other_ranks(tmp_path, monkeypatch):
    from emovox import distributed

    m = _manifest(tmp_path, n=2)
    (tmp_path / "a1.wav").write_bytes(b"RIFF....WAVEjunk")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(distributed, "init_process_group", lambda *a, **k: True)
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    monkeypatch.setenv("RANK", "1")
    extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    monkeypatch.setenv("RANK", "0")
    r0 = extract_manifest(m, "lfbe", cache_dir=tmp_path / "c", show_progress=False)
    assert r0.ids == ["u0"] and r0.failed[0].id == "u1"
    assert "not in the cache" not in r0.failed[0].cause  # rank 1's real cause is reported


@pytest.mark.slow
def test_jobs_use_worker_processes(tmp_path):
    m = _manifest(tmp_path, n=6)
    one = extract_manifest(m, "mfcc", cache_dir=tmp_path / "c1", show_progress=False)
    two = extract_manifest(m, "mfcc", jobs=2, group_size=2, cache_dir=tmp_path / "c2", show_progress=False)
    assert two.stats["computed"] == 6 and two.ids == one.ids
    for a, b in zip(one.features, two.features):
        np.testing.assert_allclose(a, b, atol=1e-4)
