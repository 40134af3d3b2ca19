"""Assignment 1: IMDB review sentiment with SimpleRNN, LSTM and GRU."""
