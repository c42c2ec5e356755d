"""Small stdlib-only modules copied into built images (runners and the ``ocibuild`` stand-in).

Everything here must run on the image's Python (3.8 or newer) with nothing but the standard
library (the function runner also needs ``cloudpickle``, which the function preprocessor copies
next to it). Nothing here may import the rest of ocibuild.
"""
