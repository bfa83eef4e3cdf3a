"""What producers and operators do, whichever face asks (the CLI, the console): enqueue,
cancel, retry; and the read models of a job's state, the queue and the workers."""
