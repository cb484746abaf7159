from nba_forecast.cli import main

main()
