"""Where the money goes: a DRG cell's cost gap to its benchmark by charge group and by case feature."""
