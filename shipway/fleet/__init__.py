"""The builder fleet: builders that pull build tasks, and what is known of each."""
