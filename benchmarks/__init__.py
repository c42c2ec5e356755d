"""Side-by-side benchmarks of ocibuild against Kubeflow Fairing, umoci+skopeo and raw limits.

Run ``python -m benchmarks.run --help`` from the repository root; see README.md.
"""
