"""The API's views, one module per concern, on `base.ApiView`/`base.ApiViewSet`."""
