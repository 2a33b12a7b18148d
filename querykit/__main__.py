from querykit.cli import main

main()
