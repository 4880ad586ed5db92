"""Recording: MixMonitor control, finalising files, storage, transcription and its workers."""
