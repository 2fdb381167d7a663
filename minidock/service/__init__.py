"""The service layer: validates requests, keeps the store, drives drivers."""
