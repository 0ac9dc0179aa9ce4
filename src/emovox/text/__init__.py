"""What is said: transcription (``transcribe``), text normalisation (``normalize``), sentiment
labelers (``sentiment``), sentence embedders (``embed``) and CTC character vocabularies (``vocab``)."""
