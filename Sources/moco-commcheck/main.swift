print("commcheck placeholder")
