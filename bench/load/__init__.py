"""`make bench-load N=…`: N concurrent whole journeys (locust, headless) against a running stack."""
