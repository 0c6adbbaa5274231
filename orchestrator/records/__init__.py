"""What a sweep leaves on disk: its state record and each trial's durable per-epoch record."""
