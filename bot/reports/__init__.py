"""Reports drawn for moderators: pure functions of storage values, no Discord."""
