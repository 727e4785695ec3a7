"""The worker service: dials in to the master and runs the jobs it is sent."""
