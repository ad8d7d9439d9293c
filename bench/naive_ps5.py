"""The baseline: the PS5 job written the way the problem set writes it, from scratch.

Twenty-nine named scalar weights, the hidden units one by one, one gradient expression and one
``np.sum`` per weight, one update line per weight.  Only numpy; nothing from scratchnet.
"""
import numpy as np


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def forward(x, bias_h, w_x1, w_x2, bias_o, w_o):
    """Hidden outputs (7 columns) and the network's output for rows x (N, 2)."""
    h = [sigmoid(bias_h[j] + w_x1[j] * x[:, 0] + w_x2[j] * x[:, 1]) for j in range(7)]
    a = bias_o
    for j in range(7):
        a = a + w_o[j] * h[j]
    return h, sigmoid(a)


def train(x_tr, y_tr, x_te, y_te, w, eta, epochs):
    """Full-batch GD; returns (w, train losses, test losses). w: the 29 weights w1..w29."""
    w1, w2, w3, w4, w5, w6, w7 = w[0:7]  # bias → n1..n7
    w8, w9, w10, w11, w12, w13, w14 = w[7:14]  # x_1 → n1..n7
    w15, w16, w17, w18, w19, w20, w21 = w[14:21]  # x_2 → n1..n7
    w22, w23, w24, w25, w26, w27, w28, w29 = w[21:29]  # bias, n1..n7 → output
    y_tr, y_te = y_tr[:, 0], y_te[:, 0]
    x1, x2 = x_tr[:, 0], x_tr[:, 1]
    train_losses, test_losses = np.empty(epochs), np.empty(epochs)
    for epoch in range(epochs):
        bias_h = [w1, w2, w3, w4, w5, w6, w7]
        w_x1 = [w8, w9, w10, w11, w12, w13, w14]
        w_x2 = [w15, w16, w17, w18, w19, w20, w21]
        w_o = [w23, w24, w25, w26, w27, w28, w29]
        h, y_pred = forward(x_tr, bias_h, w_x1, w_x2, w22, w_o)
        _, y_test = forward(x_te, bias_h, w_x1, w_x2, w22, w_o)
        train_losses[epoch] = 0.5 * np.sum((y_pred - y_tr) ** 2)
        test_losses[epoch] = 0.5 * np.sum((y_test - y_te) ** 2)
        s = (y_pred - y_tr) * y_pred * (1 - y_pred)
        g22 = np.sum(s)
        g23, g24, g25 = np.sum(s * h[0]), np.sum(s * h[1]), np.sum(s * h[2])
        g26, g27, g28 = np.sum(s * h[3]), np.sum(s * h[4]), np.sum(s * h[5])
        g29 = np.sum(s * h[6])
        d1 = s * w23 * h[0] * (1 - h[0])
        d2 = s * w24 * h[1] * (1 - h[1])
        d3 = s * w25 * h[2] * (1 - h[2])
        d4 = s * w26 * h[3] * (1 - h[3])
        d5 = s * w27 * h[4] * (1 - h[4])
        d6 = s * w28 * h[5] * (1 - h[5])
        d7 = s * w29 * h[6] * (1 - h[6])
        g1, g2, g3, g4 = np.sum(d1), np.sum(d2), np.sum(d3), np.sum(d4)
        g5, g6, g7 = np.sum(d5), np.sum(d6), np.sum(d7)
        g8, g9, g10 = np.sum(d1 * x1), np.sum(d2 * x1), np.sum(d3 * x1)
        g11, g12, g13 = np.sum(d4 * x1), np.sum(d5 * x1), np.sum(d6 * x1)
        g14 = np.sum(d7 * x1)
        g15, g16, g17 = np.sum(d1 * x2), np.sum(d2 * x2), np.sum(d3 * x2)
        g18, g19, g20 = np.sum(d4 * x2), np.sum(d5 * x2), np.sum(d6 * x2)
        g21 = np.sum(d7 * x2)
        w1 = w1 - eta * g1
        w2 = w2 - eta * g2
        w3 = w3 - eta * g3
        w4 = w4 - eta * g4
        w5 = w5 - eta * g5
        w6 = w6 - eta * g6
        w7 = w7 - eta * g7
        w8 = w8 - eta * g8
        w9 = w9 - eta * g9
        w10 = w10 - eta * g10
        w11 = w11 - eta * g11
        w12 = w12 - eta * g12
        w13 = w13 - eta * g13
        w14 = w14 - eta * g14
        w15 = w15 - eta * g15
        w16 = w16 - eta * g16
        w17 = w17 - eta * g17
        w18 = w18 - eta * g18
        w19 = w19 - eta * g19
        w20 = w20 - eta * g20
        w21 = w21 - eta * g21
        w22 = w22 - eta * g22
        w23 = w23 - eta * g23
        w24 = w24 - eta * g24
        w25 = w25 - eta * g25
        w26 = w26 - eta * g26
        w27 = w27 - eta * g27
        w28 = w28 - eta * g28
        w29 = w29 - eta * g29
    w = np.array([w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11, w12, w13, w14, w15, w16, w17,
                  w18, w19, w20, w21, w22, w23, w24, w25, w26, w27, w28, w29])
    return w, train_losses, test_losses
