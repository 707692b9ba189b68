"""CSV import jobs: creating them (upload or command line), mapping columns, previewing, and running
them (inline, in the background, or from the CLI). Adapters per kind live in `ingest/sources/`."""
