"""Splits: no speaker leakage, determinism for a seed, balance, official partitions, loo."""

from __future__ import annotations

import pytest

from emovox.manifest import Manifest, Utterance
from emovox.splits import (Fold, SplitError, check_folds, fold_summary, holdout, load_folds, make_folds,
                           save_folds)


def corpus(sizes: dict[str, int], **fields) -> Manifest:
    """A manifest with ``sizes[speaker]`` utterances per speaker (no audio needed for splits)."""
    recs = [Utterance(id=f"{s}-{i}", audio=f"{s}/{i}.wav", speaker=s, duration=1.0, emotion="neutral", **fields)
            for s, n in sizes.items() for i in range(n)]
    return Manifest(recs, corpus="toy", labels={"emotion": ["neutral"]})


def speakers_of(m: Manifest, ids: list[str]) -> set[str]:
    by = m.by_id()
    return {by[i].speaker for i in ids}


def assert_partition(m: Manifest, f: Fold) -> None:
    ids = f.train + f.validation + f.test
    assert sorted(ids) == sorted(r.id for r in m) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("protocol", ["loso", "kfold"])
def test_no_speaker_leakage_and_full_cover(protocol):
    m = corpus({f"s{i}": 3 + i for i in range(10)})
    folds = make_folds(m, protocol, k=4, seed=3)
    for f in folds:
        assert_partition(m, f)
        tr, va, te = (speakers_of(m, x) for x in (f.train, f.validation, f.test))
        assert not (tr & va) and not (tr & te) and not (va & te)
        assert va, "a validation speaker set is drawn inside each training fold"
    tests = [i for f in folds for i in f.test]
    assert sorted(tests) == sorted(r.id for r in m), "every utterance is tested exactly once"
    if protocol == "loso":
        assert len(folds) == 10 and all(len(speakers_of(m, f.test)) == 1 for f in folds)


def test_kfold_is_deterministic_for_a_seed_and_changes_with_it():
    m = corpus({f"s{i}": 5 for i in range(12)})
    a, b = make_folds(m, "kfold", k=3, seed=7), make_folds(m, "kfold", k=3, seed=7)
    assert a == b
    c = make_folds(m, "kfold", k=3, seed=8)
    assert [sorted(f.test) for f in a] != [sorted(f.test) for f in c]


def test_kfold_balances_utterance_counts():
    m = corpus({"big": 40, "a": 10, "b": 10, "c": 10, "d": 10, "e": 20, "f": 20})
    sizes = sorted(len(f.test) for f in make_folds(m, "kfold", k=3, seed=0, validation=0))
    assert sizes == [40, 40, 40]


def test_kfold_needs_enough_speakers():
    with pytest.raises(SplitError, match="at least 5 speakers"):
        make_folds(corpus({"a": 3, "b": 3}), "kfold", k=5)


def test_leaky_folds_are_refused_with_every_problem_listed():
    m = corpus({"a": 2, "b": 2})
    leaky = Fold("bad", train=["a-0", "b-0"], validation=[], test=["a-1", "b-1"])
    with pytest.raises(SplitError) as e:
        check_folds(m, [leaky])
    assert "'a'" in str(e.value) and "'b'" in str(e.value) and "2 problem" in str(e.value)
    with pytest.raises(SplitError, match="not in the manifest"):
        check_folds(m, [Fold("x", train=["a-0", "zz"], test=["b-0"])])
    with pytest.raises(SplitError, match="in both train and test"):
        check_folds(m, [Fold("x", train=["a-0"], test=["a-0"])])


def test_loso_needs_speakers_and_loo_needs_their_absence():
    m = corpus({"a": 2, "b": 2})
    with pytest.raises(SplitError, match="loo"):
        make_folds(m, "loo")
    anon = Manifest([Utterance(id=str(i), audio=f"{i}.wav") for i in range(6)], corpus="va")
    with pytest.raises(SplitError, match="speaker"):
        make_folds(anon, "loso")
    folds = make_folds(anon, "loo", validation=0.2, seed=1)
    assert [f.test for f in folds] == [[str(i)] for i in range(6)]
    for f in folds:
        assert_partition(anon, f)
        assert len(f.validation) == 1 and f.test[0] not in f.train + f.validation
    assert folds == make_folds(anon, "loo", validation=0.2, seed=1)


def test_official_split_field_one_fold_per_test_set():
    recs = ([Utterance(id=f"t{i}", audio="x.wav", speaker=f"tr{i % 4}", split="train") for i in range(8)]
            + [Utterance(id="v0", audio="x.wav", speaker="dev", split="validation"),
               Utterance(id="x1", audio="x.wav", speaker="e1", split="test1"),
               Utterance(id="x2", audio="x.wav", speaker="e2", split="test2")])
    folds = make_folds(Manifest(recs), "official")
    assert [(f.name, f.validation, f.test) for f in folds] == [("test1", ["v0"], ["x1"]), ("test2", ["v0"], ["x2"])]
    assert len(folds[0].train) == 8
    # AN4-like: train/test only -> validation speakers carved from train
    an4 = Manifest([Utterance(id=f"t{i}", audio="x.wav", speaker=f"s{i % 5}", split="train") for i in range(20)]
                   + [Utterance(id="e", audio="x.wav", speaker="z", split="test")])
    (f,) = make_folds(an4, "official", validation=0.2)
    assert f.test == ["e"] and len(f.validation) == 4 and len(speakers_of(an4, f.validation)) == 1


def test_official_refuses_leaking_partitions():
    recs = [Utterance(id="a", audio="x.wav", speaker="s", split="train"),
            Utterance(id="b", audio="x.wav", speaker="s", split="test")]
    with pytest.raises(SplitError, match="speaker 's' appears in test and train"):
        make_folds(Manifest(recs), "official")


def test_official_sessions_leave_one_session_out():
    recs = [Utterance(id=f"{s}{g}{i}", audio="x.wav", speaker=f"{s}{g}", session=s)
            for s in ("Session1", "Session2", "Session3") for g in "FM" for i in range(3)]
    folds = make_folds(Manifest(recs), "official")
    assert [f.name for f in folds] == ["Session1", "Session2", "Session3"]
    assert all(len(f.test) == 6 for f in folds)
    with pytest.raises(SplitError, match="no official partitions"):
        make_folds(corpus({"a": 2, "b": 2}), "official")


def test_save_load_and_summary(tmp_path):
    m = corpus({f"s{i}": 4 for i in range(6)})
    folds = make_folds(m, "loso")
    save_folds(tmp_path / "f.json", folds, protocol="loso", seed=0, corpus="toy")
    assert load_folds(tmp_path / "f.json") == folds
    rows = fold_summary(m, folds)
    assert len(rows) == 3 * len(folds)
    assert rows[2] == {"fold": "s0", "partition": "test", "utterances": 4, "speakers": 1, "hours": round(4 / 3600, 4),
                       "emotion": {"neutral": 4}}


def test_bad_arguments():
    m = corpus({"a": 2, "b": 2})
    with pytest.raises(SplitError, match="unknown split protocol"):
        make_folds(m, "random")
    with pytest.raises(SplitError, match="validation fraction"):
        make_folds(m, "loso", validation=1.5)


# ----------------------------------------------------------------------------- holdout


def test_holdout_moves_whole_speakers_and_is_seeded():
    m = corpus({f"s{i}": 4 + i % 3 for i in range(3)})  # 3 speakers: below the old 5-speaker threshold
    train, val = holdout(m, 0.3, seed=1)
    assert val and train and not speakers_of(m, train) & speakers_of(m, val)
    assert sorted(train + val) == sorted(r.id for r in m)
    assert [r.id for r in m if r.id in set(train)] == train  # manifest order kept
    assert holdout(m.records, 0.3, seed=1) == (train, val)
    assert holdout(m, 0.0) == ([r.id for r in m], [])


def test_holdout_uses_the_manifests_own_validation_split():
    m = corpus({"a": 3, "b": 3})
    for r, split in zip(m.records, ["train", "dev", "train", "validation", "test", "train"]):
        r.split = split
    train, val = holdout(m, 0.5)
    assert val == ["a-1", "b-0"] and train == ["a-0", "a-2", "b-1", "b-2"]


def test_holdout_with_one_speaker_or_none_still_gives_a_validation_set(caplog):
    one = corpus({"only": 20})
    with caplog.at_level("WARNING", logger="emovox.splits"):
        train, val = holdout(one, 0.1, seed=0)
    assert len(val) == 2 and len(train) == 18 and "not speaker independent" in caplog.text
    assert holdout(one, 0.1, seed=0) == (train, val) and holdout(one, 0.1, seed=3) != (train, val)
    anonymous = Manifest([Utterance(id=f"u{i}", audio=f"{i}.wav") for i in range(10)])
    caplog.clear()
    with caplog.at_level("WARNING", logger="emovox.splits"):
        train, val = holdout(anonymous, 0.2)
    assert len(val) == 2 and len(train) == 8 and "not speaker independent" in caplog.text
    assert holdout(corpus({"only": 1}), 0.1) == (["only-0"], [])
