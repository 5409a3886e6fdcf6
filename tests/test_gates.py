"""Deep Learning from Scratch ch. 5: the apples-and-oranges graph."""

import numpy as np
import pytest

import bpnet


def test_apples_and_oranges(backend):
    xp, f = backend.xp, lambda v: backend.asarray(np.asarray(v), "float64")
    apple, n_apple, orange, n_orange, tax = f(100.0), f(2.0), f(150.0), f(3.0), f(1.1)
    mul_apple, mul_orange, add, mul_tax = (
        bpnet.Multiply(),
        bpnet.Multiply(),
        bpnet.Add(),
        bpnet.Multiply(),
    )
    apple_price = mul_apple.forward(apple, n_apple)
    orange_price = mul_orange.forward(orange, n_orange)
    all_price = add.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)

    d_all, d_tax = mul_tax.backward(f(1.0))
    d_apple_price, d_orange_price = add.backward(d_all)
    d_apple, d_n_apple = mul_apple.backward(d_apple_price)
    d_orange, d_n_orange = mul_orange.backward(d_orange_price)

    got = {
        k: float(v)
        for k, v in dict(
            price=price,
            apple=d_apple,
            n_apple=d_n_apple,
            orange=d_orange,
            n_orange=d_n_orange,
            tax=d_tax,
        ).items()
    }
    assert got == pytest.approx(
        dict(price=715, apple=2.2, n_apple=110, orange=3.3, n_orange=165, tax=650)
    )
    assert xp.isdtype(price.dtype, "real floating")


def test_broadcasting_backward_sums_to_input_shapes(backend):
    rng = np.random.default_rng(0)
    x_h, b_h, s_h = (
        rng.normal(size=(4, 3)),
        rng.normal(size=(3,)),
        rng.normal(size=(4, 1)),
    )
    x, b, s = (backend.asarray(a, "float64") for a in (x_h, b_h, s_h))
    add, mul = bpnet.Add(), bpnet.Multiply()
    out = mul.forward(add.forward(x, b), s)
    dout_h = rng.normal(size=(4, 3))
    d_sum, d_s = mul.backward(backend.asarray(dout_h, "float64"))
    d_x, d_b = add.backward(d_sum)
    t = backend.to_numpy
    np.testing.assert_allclose(t(out), (x_h + b_h) * s_h)
    np.testing.assert_allclose(
        t(d_s), (dout_h * (x_h + b_h)).sum(axis=1, keepdims=True)
    )
    np.testing.assert_allclose(t(d_x), dout_h * s_h)
    np.testing.assert_allclose(t(d_b), (dout_h * s_h).sum(axis=0))
    assert t(d_b).shape == (3,) and t(d_s).shape == (4, 1)


def test_the_books_shopping_examples_with_python_numbers():
    # buy_apple.py and buy_apple_orange.py of ch. 5, numbers as the book has them
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    m_apple, m_orange, add, m_tax = (
        bpnet.Multiply(),
        bpnet.Multiply(),
        bpnet.Add(),
        bpnet.Multiply(),
    )
    total = add.forward(
        m_apple.forward(apple, apple_num), m_orange.forward(orange, orange_num)
    )
    assert m_tax.forward(total, tax) == pytest.approx(715)
    d_total, d_tax = m_tax.backward(1)
    d_apples, d_oranges = add.backward(d_total)
    d_apple, d_apple_num = m_apple.backward(d_apples)
    d_orange, d_orange_num = m_orange.backward(d_oranges)
    got = [d_apple_num, d_apple, d_orange, d_orange_num, d_tax]
    assert got == pytest.approx([110, 2.2, 3.3, 165, 650])


def test_add_hands_each_input_its_own_gradient():
    gate = bpnet.Add()
    gate.forward(np.ones(3), np.ones(3))
    dx, dy = gate.backward(np.ones(3))
    dx += 1  # in place, as a caller may
    np.testing.assert_array_equal(dy, np.ones(3))
