from claudebench.cli import main

main()
