"""ValidatingAdmissionPolicy enforcement: matching, CEL evaluation and the admission plugin."""
