"""30-day unplanned readmission at discharge: label rules, the LACE index and the calibrated model."""
