"""Inter-company circular economy matchmaking for the CC du Mont des Avaloirs."""
