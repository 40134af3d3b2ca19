"""Units the engine counts in: every size in a spec is in MB (mebibytes, 2**20 bytes)."""

MB = 1 << 20
