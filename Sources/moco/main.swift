print("moco")
