"""img2dataset downloads with curate's guards: the URL policy, guarded fetch, attempt folders, the loopback server,
and the child process img2dataset runs in (issue 8)."""
