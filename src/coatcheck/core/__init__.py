"""The sans-I/O core: tokens, records, policy decisions and the clock. Nothing here does I/O."""
