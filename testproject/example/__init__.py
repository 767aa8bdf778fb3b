"""The testproject's example app: one job and the model it writes to."""
