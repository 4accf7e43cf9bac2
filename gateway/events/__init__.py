"""Live events: the bus subscribers listen on, the stored job and organization events, and the relay that carries them between processes."""
