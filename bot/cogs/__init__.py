"""One feature per cog; each module has `async def setup(bot)`."""
