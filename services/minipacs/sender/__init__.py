"""The C-MOVE sender worker: takes move jobs from Redis, sends with C-STORE."""
