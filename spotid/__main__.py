from spotid.cli import main

main()
