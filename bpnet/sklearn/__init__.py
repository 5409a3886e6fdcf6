"""scikit-learn estimators over bpnet networks."""
