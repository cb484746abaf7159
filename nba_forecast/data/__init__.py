"""Game data: schema, loaders, validation, the shipped real games, splits and a simulator."""
