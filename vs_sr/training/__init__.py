"""Fine-tuning networks on a user's own footage: data (decoded once), degradations, the loop."""
