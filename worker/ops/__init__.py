"""What producers and operators do, whichever face asks (the CLI, the console): enqueue (one
job, a submission, a file of metric points), follow jobs to their end, cancel, retry; and
the read models of a job's state, the queue and the workers."""
