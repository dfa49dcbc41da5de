from shipway.cli.main import run

run()
