"""The chargemaster: versioned price lists of billable items with their equivalence groups."""
