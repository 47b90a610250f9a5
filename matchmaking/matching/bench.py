"""Performance benchmark of the matching engine on synthetic listings."""
