"""Assignment 3: time-series forecasting with LSTM and GRU (AAPL prices, Beijing weather)."""
