"""The core: the PS5 network, its tables and its data; numpy only."""
