"""Domain code of the paid-upload service; shipped to Lambda with app.py."""
