"""The pure core of analysis: the AnalysisRun state machine, run specs, backtest and the condition
language.
"""
