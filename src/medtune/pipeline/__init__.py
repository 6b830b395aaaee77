"""One function per DVC stage: params in, library calls, outs written. `medtune <stage>` calls them
and dvc.yaml calls `medtune <stage>`, so the pipeline and the CLI share one code path."""
