from shipway.cli import run

run()
