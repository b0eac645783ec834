"""What the dataset must respect: removal lists and evaluation-set decontamination."""
