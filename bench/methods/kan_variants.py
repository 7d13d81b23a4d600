"""KAN numeric models of other architectures, each a method of its own with its own settings section."""

from bench.methods.kan import KANNumeric


class KANNumericMinimal(KANNumeric):
    """The KAN numeric training applied to the ``kan_minimal`` settings, [1, 3, 1] by default."""

    name = "kan_numeric_minimal"
