"""Ray actors and the engines behind them: student inference, teachers, trainer."""
