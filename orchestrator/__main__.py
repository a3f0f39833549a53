from sgi.orchestrator.cli import main

main()
