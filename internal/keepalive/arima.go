package keepalive

import (
	"math"

	"gonum.org/v1/gonum/mat"
)

// forecast predicts the next value of a series with an ARIMA(p,d,q) model,
// p ≤ 2, d ≤ 1, q ≤ 1, chosen by Akaike's information criterion and fitted
// by the Hannan–Rissanen method (a long autoregression estimates the
// innovations; one least-squares regression on lagged values and lagged
// innovations then gives the coefficients). The hybrid policy's paper fits
// ARIMA to the idle times of apps whose idle times mostly fall beyond the
// histogram; this is that model class, small enough to refit on each
// decision. A series of one value predicts that value.
func forecast(xs []float64) float64 {
	switch len(xs) {
	case 0:
		return 0
	case 1:
		return xs[0]
	}
	best, bestAIC := xs[len(xs)-1], math.Inf(1)
	for d := 0; d <= 1; d++ {
		y := xs
		if d == 1 {
			y = diff(xs)
		}
		for p := 0; p <= 2; p++ {
			for q := 0; q <= 1; q++ {
				pred, aic, ok := fitARMA(y, p, q)
				if !ok || aic >= bestAIC {
					continue
				}
				if d == 1 {
					pred += xs[len(xs)-1]
				}
				best, bestAIC = pred, aic
			}
		}
	}
	return best
}

func diff(xs []float64) []float64 {
	out := make([]float64, len(xs)-1)
	for i := range out {
		out[i] = xs[i+1] - xs[i]
	}
	return out
}

// fitARMA fits y_t = c + Σ a_i y_{t-i} + Σ b_j e_{t-j} + e_t and returns the
// one-step forecast and the AIC; ok is false when y is too short.
func fitARMA(y []float64, p, q int) (pred, aic float64, ok bool) {
	n := len(y)
	// Innovations: residuals of a long AR(m) when q > 0.
	var e []float64
	lagStart := p
	if q > 0 {
		m := min(4, n/3)
		if m < 1 {
			return 0, 0, false
		}
		coef, ok := leastSquares(y, m, 0, nil)
		if !ok {
			return 0, 0, false
		}
		e = make([]float64, n)
		for t := m; t < n; t++ {
			e[t] = y[t] - predictAt(y, nil, coef, t, m, 0)
		}
		lagStart = max(p, m+q)
	}
	k := 1 + p + q
	if n-lagStart < k+2 {
		return 0, 0, false
	}
	coef, ok := leastSquaresFrom(y, p, q, e, lagStart)
	if !ok {
		return 0, 0, false
	}
	rss := 0.0
	for t := lagStart; t < n; t++ {
		r := y[t] - predictAt(y, e, coef, t, p, q)
		rss += r * r
	}
	m := float64(n - lagStart)
	aic = m*math.Log(max(rss/m, 1e-12)) + 2*float64(k)
	return predictAt(y, e, coef, n, p, q), aic, true
}

// predictAt is the model's prediction of y[t] from the values and
// innovations before t (t may be len(y): the forecast).
func predictAt(y, e, coef []float64, t, p, q int) float64 {
	v := coef[0]
	for i := 1; i <= p; i++ {
		v += coef[i] * y[t-i]
	}
	for j := 1; j <= q; j++ {
		v += coef[p+j] * e[t-j]
	}
	return v
}

func leastSquares(y []float64, p, q int, e []float64) ([]float64, bool) {
	return leastSquaresFrom(y, p, q, e, p)
}

// leastSquaresFrom regresses y[t], t ≥ from, on 1, p lags of y and q lags of e.
func leastSquaresFrom(y []float64, p, q int, e []float64, from int) ([]float64, bool) {
	rows, cols := len(y)-from, 1+p+q
	if rows < cols {
		return nil, false
	}
	a := mat.NewDense(rows, cols, nil)
	b := mat.NewVecDense(rows, nil)
	for r := 0; r < rows; r++ {
		t := from + r
		a.Set(r, 0, 1)
		for i := 1; i <= p; i++ {
			a.Set(r, i, y[t-i])
		}
		for j := 1; j <= q; j++ {
			a.Set(r, p+j, e[t-j])
		}
		b.SetVec(r, y[t])
	}
	var x mat.VecDense
	if err := x.SolveVec(a, b); err != nil {
		return nil, false
	}
	out := make([]float64, cols)
	for i := range out {
		out[i] = x.AtVec(i)
		if math.IsNaN(out[i]) || math.IsInf(out[i], 0) {
			return nil, false
		}
	}
	return out, true
}
