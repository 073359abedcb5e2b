"""One run, start to record: the job a rule starts (job), the supervisor (limits, cleanup, the final record),
the fresh driver process, the runner's phases and the measurement around them; the machine's own record."""
