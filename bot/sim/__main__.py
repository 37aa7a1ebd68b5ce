"""``python -m bot.sim [options]``: same as ``flowbot sim``."""

import typer

from bot.sim.command import sim_command

if __name__ == "__main__":
    typer.run(sim_command)
