"""The core every command builds on: run folders, shards, atomic writes, tar members, chunked Ray stages."""
